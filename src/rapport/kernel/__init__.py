"""What every domain uses: database, ids, errors, pagination, security primitives."""
