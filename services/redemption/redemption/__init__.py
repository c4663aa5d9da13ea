"""The redemption service: catalog, orders, vouchers and the redemption saga."""
