-- A starter set of categories (大类 two digits, 小类 four digits), enough to report
-- the problems a civilised-city campaign asks citizens to snap.
INSERT INTO categories (code, parent_code, name_zh, name_en, sort_order) VALUES
 ('01', NULL, '市容环境', 'City appearance', 10),
 ('0101', '01', '暴露垃圾', 'Exposed rubbish', 11),
 ('0102', '01', '小广告', 'Illegal flyers', 12),
 ('0103', '01', '占道经营', 'Street vending on the pavement', 13),
 ('0104', '01', '乱晾晒', 'Laundry hung in public space', 14),
 ('02', NULL, '交通秩序', 'Traffic order', 20),
 ('0201', '02', '机动车乱停放', 'Illegally parked car', 21),
 ('0202', '02', '非机动车乱停放', 'Badly parked bicycle or e-bike', 22),
 ('0203', '02', '人行道被占用', 'Blocked pavement', 23),
 ('03', NULL, '安全隐患', 'Safety hazards', 30),
 ('0301', '03', '飞线充电', 'E-bike charged from a dangling cable', 31),
 ('0302', '03', '井盖缺失', 'Missing manhole cover', 32),
 ('0303', '03', '管线凌乱', 'Tangled overhead cables', 33),
 ('04', NULL, '文明行为', 'Civility', 40),
 ('0401', '04', '不文明养犬', 'Unleashed or uncontrolled dog', 41),
 ('0402', '04', '乱扔垃圾', 'Littering', 42);
