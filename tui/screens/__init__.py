"""One screen per module. Screens orchestrate: they call the app's client in workers, fold
feed events into their state and hand widgets what to show."""
