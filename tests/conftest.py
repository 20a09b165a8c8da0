pytest_plugins = ["agentkit.testing.fixtures"]
