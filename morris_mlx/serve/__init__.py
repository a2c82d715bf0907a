"""`morris serve`: mlx-lm's OpenAI-compatible server for one base model and the adapters trained on it.

Requests bring their own messages; no system prompt is added. To write in the voice, send the turns that
`morris_mlx.prompts.article_messages(topic)` builds (the voice's system prompt plus the instruction the
training data used). A request with `"morris_review": true` also gets the content review of its text.

Modules: `security` (bind and key checks), `adapters` (which adapters, checked at start), `models`
(mlx-lm's engine over one base with swappable adapters), `handler` (HTTP checks in front of mlx-lm's
handler), `review` (the optional content review of replies), `server` (assembly; `MorrisServer`).
Importing this package does not import mlx.
"""
