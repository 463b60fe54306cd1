"""The export's decisions, without I/O: records, observations and the time in; the new
records and the actions to take out. Nothing here calls a service, reads the clock or the
environment, or logs: the shell around it (the other handler modules) does.
"""
