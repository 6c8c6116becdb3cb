"""Pull-request previews: what a change to a stack does, readable without cluster credentials."""
