"""One module per screen: write, models, train, data, plus the save and history dialogs."""
