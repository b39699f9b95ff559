# The agents' image: every docker-compose service runs a `shadow` command from it.
# Stage 1 builds the wheel with a C compiler (the C Avro codec, shadowstream/schemas/_cavro.c);
# the runtime image stays slim.
FROM python:3.11 AS build
WORKDIR /src
# The whole source tree (.dockerignore keeps out what is not source), so no
# hand-kept list of packages can go stale.
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -c "import zipfile, glob; w = glob.glob('/wheels/*.whl')[0]; \
assert any('_cavro' in n for n in zipfile.ZipFile(w).namelist()), 'C codec not built'"

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
# [server]: every command against Kafka and a ClickHouse server; no chDB, no embedded broker;
# [llm]: provider batch APIs and the LLM judge (official openai/anthropic clients)
RUN pip install --no-cache-dir "$(ls /wheels/*.whl)[server,llm]" && rm -rf /wheels
COPY examples ./examples
ENV SHADOW_CONFIG=/app/examples/shadow.toml
ENTRYPOINT ["shadow", "--log-level", "info"]
