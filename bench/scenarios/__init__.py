"""One module per scenario group; each has NAME and `async def run(run, report)`."""
