-- Lets one statement refuse itself. A batch written as one statement (report
-- intake, store::bulk::postgres::insert_reports) checks what it did and, when
-- that is not everything it was given, raises, so that nothing of it is kept and
-- the batch can be written the general way, which answers each item on its own.
CREATE FUNCTION refuse_unless(ok boolean, reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', reason USING ERRCODE = 'check_violation';
    END IF;
    RETURN true;
END
$$;
