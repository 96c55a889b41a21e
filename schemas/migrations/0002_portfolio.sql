-- portfolio_daily: per partner, SKU and day, summed over the partner's
-- customers, i.e. the tenants with a subscription of that SKU through the
-- partner (latest state). A tenant buying one SKU from two partners counts
-- in both portfolios.
CREATE VIEW IF NOT EXISTS {db}.portfolio_daily AS
SELECT
    p.partner_id AS partner_id,
    d.sku AS sku,
    d.date AS date,
    uniqExact(d.tenant_id) AS tenants,
    sum(d.sold) AS sold,
    sum(d.trial) AS trial,
    sum(d.assigned) AS assigned,
    sum(d.qualified) AS qualified,
    if(sum(d.sold) = 0, NULL, 100 * sum(d.assigned) / sum(d.sold)) AS deployment_pct,
    sum(u.active_users) AS active_users,
    if(sum(d.qualified) = 0, NULL, 100 * sum(u.active_users) / sum(d.qualified)) AS usage_pct,
    min(d.final) AS final
FROM {db}.deployment_daily AS d FINAL
INNER JOIN
(
    SELECT DISTINCT tenant_id, sku, partner_id FROM {db}.subscriptions FINAL
) AS p ON p.tenant_id = d.tenant_id AND p.sku = d.sku
LEFT JOIN
(
    SELECT tenant_id, sku, date, active_users FROM {db}.usage_daily FINAL WHERE workload = 'all'
) AS u ON u.tenant_id = d.tenant_id AND u.sku = d.sku AND u.date = d.date
GROUP BY p.partner_id, d.sku, d.date;
