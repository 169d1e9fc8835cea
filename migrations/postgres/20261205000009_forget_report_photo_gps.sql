-- A reporter's photo keeps its GPS fix only until its report is filed (the
-- distance to the report point is taken then); forget the fixes kept so far.
UPDATE photos SET gps_lat = NULL, gps_lon = NULL WHERE case_id IS NOT NULL AND stage = 'before';
