//! The planner: every Tekton rule the reset depends on, in one place. Pure: no I/O.
