"""Permissions (seed 003's `domain:function:action`): permission domains, permissions,
roles that bundle them, and grants to people platform-wide or per conversation, checked
by one function, access.has_permission. Schema `access`."""
