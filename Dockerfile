# The agents' image: every docker-compose service runs a `shadow` command from it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shadowstream ./shadowstream
COPY shadow_cli ./shadow_cli
COPY schemas ./schemas
COPY producers ./producers
COPY stream_agents ./stream_agents
COPY sinks ./sinks
COPY analytics ./analytics
COPY examples ./examples
RUN pip install --no-cache-dir '.[all]'
ENV SHADOW_CONFIG=/app/examples/shadow.toml
ENTRYPOINT ["shadow", "--log-level", "info"]
