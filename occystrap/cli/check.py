"""placeholder: replaced by the check command implementation."""
