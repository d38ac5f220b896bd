"""Ray Serve deployments and the FastAPI app: routes, middleware and the Serve config."""
