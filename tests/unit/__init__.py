"""Pure unit tests: no sockets, no database, no subprocess; fast (`make test-unit`)."""
