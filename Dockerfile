# syntax=docker/dockerfile:1

# ---- build -------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /app
# Any sqlx query macros must compile from the checked-in .sqlx metadata,
# never by reaching for a database from inside the image build.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# Optional cargo features; `--build-arg CARGO_FEATURES=turbojpeg` builds the photo
# pipeline on libjpeg-turbo (see README, "Photo processing"), which needs cmake
# and nasm here and nothing at run time (it is linked statically).
ARG CARGO_FEATURES=""
RUN if [ -n "$CARGO_FEATURES" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends cmake nasm \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# Dependencies first: this layer is rebuilt only when the manifest or lock
# file changes, not on every source edit. Stub targets let cargo resolve and
# compile the whole dependency graph without the real sources. The stub
# crate's own artifacts are then deleted: COPY keeps the sources' original
# mtimes, which can be older than the stub build and make cargo skip the
# real rebuild.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin civicsnap --features "$CARGO_FEATURES" \
 && rm -rf src \
      target/release/civicsnap* \
      target/release/.fingerprint/civicsnap-* \
      target/release/deps/civicsnap-* \
      target/release/deps/libcivicsnap-*

COPY . .
RUN cargo build --release --locked --bin civicsnap --features "$CARGO_FEATURES"

# ---- runtime -----------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: rustls verifies S3/Postgres TLS against the system store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed ids so volume ownership is predictable across rebuilds and hosts.
RUN groupadd --system --gid 10001 civicsnap \
 && useradd --system --uid 10001 --gid civicsnap \
      --home-dir /var/lib/civicsnap --create-home --shell /usr/sbin/nologin civicsnap

COPY --from=builder /app/target/release/civicsnap /usr/local/bin/civicsnap

# The default data dir is ./data, so this makes it /var/lib/civicsnap/data,
# writable by the service user (local photo store, generated secrets).
WORKDIR /var/lib/civicsnap
USER civicsnap:civicsnap

EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/civicsnap"]
CMD ["serve"]
