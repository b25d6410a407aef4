// Clicks, conversions, conversion events and the postback log.

#[async_trait]
impl TrackingTx for SqlTx {}
