-- The live columns of a table, in order.
SELECT attname
  FROM pg_attribute
 WHERE attrelid = %(name)s::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum
