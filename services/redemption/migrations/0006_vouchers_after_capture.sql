-- A voucher's code is issued only once its points are captured (the order is fulfilled). Codes that
-- earlier versions issued before the capture are dropped: the order gets a new one when it is captured.
UPDATE orders SET voucher_code = NULL WHERE state <> 'fulfilled' AND voucher_code IS NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_voucher_after_capture CHECK (state = 'fulfilled' OR voucher_code IS NULL);
