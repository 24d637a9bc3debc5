"""Memory planning: lifetimes -> allocators (registry) -> verifier -> MemoryPlan."""
