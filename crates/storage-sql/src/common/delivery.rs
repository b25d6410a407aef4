// The delivery queue, attempts, partner postback and callback settings.

#[async_trait]
impl DeliveryTx for SqlTx {}
