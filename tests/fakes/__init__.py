"""Loopback fakes of the services Haha talks to, speaking their real wire protocols."""
