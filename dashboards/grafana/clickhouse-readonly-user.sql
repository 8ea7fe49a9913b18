-- The ClickHouse user Grafana reads as: SELECT on the ctpipe database only, readonly=2 so the
-- data source may still set max_execution_time per query (the plugin's documented setup).
CREATE USER IF NOT EXISTS ctpipe_grafana IDENTIFIED WITH sha256_password BY 'change-me'
  SETTINGS readonly = 2, max_execution_time = 60 CHANGEABLE_IN_READONLY;
GRANT SELECT ON ctpipe.* TO ctpipe_grafana;
