"""Support desk (seed 003): support rooms with issues and guests, agents by level,
escalations T1 to manager with queues and SLAs, and supervisors who observe. Schema
`support`."""
