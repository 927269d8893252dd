"""placeholder: replaced by the info command implementation."""
