"""Analytics on the comparisons in ClickHouse: reports, slices, promotion gate."""
