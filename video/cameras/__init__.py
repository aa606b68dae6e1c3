"""Window cameras: what a camera is (its source checked safe), the registry, and its routes."""
