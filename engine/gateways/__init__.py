"""Payment gateways: one `Gateway` protocol, one module per gateway, found through a registry."""
