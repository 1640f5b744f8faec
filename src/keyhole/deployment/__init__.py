"""The deployment as a whole: which processes run where, and `keyhole doctor`'s checks."""
