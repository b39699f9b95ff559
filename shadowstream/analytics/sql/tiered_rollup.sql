-- The per-minute rollup read in two tiers: whole hours of the range from
-- comparisons_hour, the partial hours at either end from comparisons_minute.
-- Same rows as comparisons_minute alone, far fewer t-digest states to merge.
-- {hour_since}/{hour_until}: the range's first and last whole hour
-- (analytics.queries.TimeRange.hours); equal when the range has no whole hour.
(
    SELECT * EXCEPT (hour), hour AS minute
    FROM {db}.comparisons_hour
    WHERE hour >= {hour_since:DateTime64(3, 'UTC')}
      AND hour < {hour_until:DateTime64(3, 'UTC')}
    UNION ALL
    SELECT * EXCEPT (minute), minute
    FROM {db}.comparisons_minute
    WHERE (minute >= {since:DateTime64(3, 'UTC')} AND minute < {hour_since:DateTime64(3, 'UTC')})
       OR (minute >= {hour_until:DateTime64(3, 'UTC')} AND minute < {until:DateTime64(3, 'UTC')})
)
