# Build and run mcp-sts. Used by docker-compose.yml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin mcp-sts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mcp-sts mcp-sts && mkdir -p /var/lib/mcp-sts/keys && chown -R mcp-sts /var/lib/mcp-sts
COPY --from=build /src/target/release/mcp-sts /usr/local/bin/mcp-sts
USER mcp-sts
EXPOSE 8400
ENTRYPOINT ["mcp-sts"]
CMD ["serve", "--config", "/etc/mcp-sts/mcp-sts.toml"]
