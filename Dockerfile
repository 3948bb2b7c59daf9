# Build and run mcp-sts. Used by docker-compose.yml.
#
# The dependency layer is cached: the manifests and a stub crate are built first, so a
# change to the source recompiles mcp-sts only. .dockerignore keeps target/ and keys/
# (and any other private key) out of the build context.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/contract/Cargo.toml crates/contract/
COPY crates/downstream/Cargo.toml crates/downstream/
COPY crates/demo/Cargo.toml crates/demo/
COPY crates/test-kit/Cargo.toml crates/test-kit/
RUN mkdir -p src benches examples crates/downstream/examples \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/exchange.rs \
    && for e in load bench_rig interop_rmcp_server ssf_latency ssf_fanout durable_acks; do echo 'fn main() {}' > examples/$e.rs; done \
    && for e in mcp_server downstream_api; do echo 'fn main() {}' > crates/downstream/examples/$e.rs; done \
    && for c in contract downstream demo test-kit; do mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
    && cargo build --release --locked --bin mcp-sts \
    && rm -rf src benches examples crates
COPY src src
COPY crates crates
# Make sure cargo rebuilds our crates, not the cached stubs.
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs && cargo build --release --locked --bin mcp-sts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/mcp-sts mcp-sts \
    && mkdir -p /var/lib/mcp-sts/keys && chown -R mcp-sts /var/lib/mcp-sts
COPY --from=build /src/target/release/mcp-sts /usr/local/bin/mcp-sts
# Never root at run time; the keys volume is owned by this user.
USER 10001:10001
EXPOSE 8400
STOPSIGNAL SIGTERM
ENTRYPOINT ["mcp-sts"]
CMD ["serve", "--config", "/etc/mcp-sts/mcp-sts.toml"]
