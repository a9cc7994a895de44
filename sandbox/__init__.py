"""sandbox: the bank emulator (three banks' APIs, generated data, fault switches, a control API),
mounted under /sandbox/ by the root URLconf when SANDBOX_ENABLED.

It answers as a bank would and knows nothing of ours: it imports no feature app, and no feature
app imports it (only tests drive it). Both are contracts in `.importlinter`.
"""
