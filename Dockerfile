# webhook-listener: built in throwaway stages, so the image holds one binary and no toolchain, sources
# or registry cache.
#
#   docker build -t webhook-listener .
#   docker run -d -p 8000:8000 -e WEBHOOK_SECRET=... -v webhook-events:/var/lib/webhook-listener webhook-listener
#
# Base images are pinned by tag; for fully reproducible builds pin them by digest as well (@sha256:...).

# ---------------------------------------------------------------------------------------------------
# Skeleton: the context's Cargo manifests and lock file, with every .rs file replaced by a stub. The
# builder compiles the dependencies from this first, so that layer is reused until Cargo.toml,
# Cargo.lock or the set of source files changes, while editing code only recompiles this crate. Stubbing
# every file (rather than writing just a dummy src/main.rs) keeps the manifest valid whatever targets it
# declares: an explicit [[bench]], [[test]] or [[example]] must exist on disk or cargo refuses to parse it.
# Pinned to a toolchain version (not `latest`) so a rebuild does not silently change compiler; bookworm
# so the binary links against the same glibc (2.36) as the Debian 12 runtime below.
FROM rust:1.95.0-bookworm AS skeleton
WORKDIR /context
COPY . .
RUN find . -name '*.rs' -type f -exec sh -c \
      'for f; do mkdir -p "/skeleton/${f%/*}" && echo "fn main() { }" > "/skeleton/$f"; done' sh {} + \
 && find . \( -name Cargo.toml -o -name Cargo.lock -o -name 'rust-toolchain*' -o -path './.cargo/*' \) \
      -type f -exec cp --parents {} /skeleton/ \;

# ---------------------------------------------------------------------------------------------------
# Builder. The full image, not -slim: it has gcc, which mimalloc's C sources need (libmimalloc-sys
# compiles them with the cc crate).
FROM rust:1.95.0-bookworm AS builder
WORKDIR /src

# Dependencies, in their own layer. --locked makes the build fail rather than quietly resolve other
# versions than the ones in Cargo.lock.
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked --bin webhook-listener

# The real sources (what .dockerignore lets through; config/ is needed at compile time, the default
# config is embedded with include_str!). COPY keeps the files' original mtimes, which are older than
# the stub build above, so cargo would think nothing changed: touch them to force this crate's rebuild.
COPY . .
# Then: refuse to ship a stub (the real binary knows its name and version), and lay out the runtime
# files here, because the distroless runtime has no shell to RUN anything in: the binary with mode 0755
# (owned by root below, so the service user cannot replace it) and the event-log directory (owned by
# the service user below).
RUN find . -path ./target -prune -o -name '*.rs' -type f -exec touch {} + \
 && cargo build --release --locked --bin webhook-listener \
 && target/release/webhook-listener --version | grep -q '^webhook-listener ' \
 && install -D -m 0755 target/release/webhook-listener /out/usr/local/bin/webhook-listener \
 && install -d /out/var/lib/webhook-listener

# ---------------------------------------------------------------------------------------------------
# Runtime. distroless/cc has exactly what a Rust binary linked against glibc needs (libc, libgcc_s,
# CA certificates, /etc/passwd with `nonroot`) and no shell or package manager to attack.
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="webhook-listener" \
      org.opencontainers.image.description="A standalone webhook receiver: verifies signatures over the raw body, caps bodies, and acknowledges only what is durably logged." \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

# Owned by root and not writable by the service user: a compromised process cannot swap its own binary.
COPY --from=builder --chown=0:0 /out/usr/local/bin/webhook-listener /usr/local/bin/webhook-listener
# The event log directory belongs to the service user, who must append to the log there.
COPY --from=builder --chown=65532:65532 /out/var/lib/webhook-listener /var/lib/webhook-listener

# Never run as root. Numeric, so it holds even where the base has no passwd entry for the name
# (Kubernetes runAsNonRoot can only verify a numeric user).
USER 65532:65532

# The default config logs to the relative path `webhook-listener.log`, so the working directory is
# where events land: make it the log directory.
WORKDIR /var/lib/webhook-listener
# Accepted events are the product; keep them outside the container's writable layer so they survive
# the container being replaced. Declared after the directory is populated and chowned above.
VOLUME ["/var/lib/webhook-listener"]

EXPOSE 8000

# The binary checks its own /healthz (no curl/wget in the image). It asks http://127.0.0.1:8000/healthz;
# if you serve on another port, override this with `healthcheck --url ...`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["webhook-listener", "healthcheck"]

# SIGTERM is the signal the server handles to shut down cleanly and exit 0 (it is also the default;
# stated so the stop behaviour does not depend on that).
STOPSIGNAL SIGTERM

# Exec form: the server is PID 1 and receives the stop signal itself, with no shell in between.
ENTRYPOINT ["webhook-listener"]
# Default: serve with the embedded config (one NetBox hook at /webhook/, secret from WEBHOOK_SECRET:
# without it the server refuses to start) on all interfaces. In CMD rather than ENV so that
# `docker run IMAGE --config FILE` replaces it and the config file's own `listen` applies.
CMD ["--listen", "0.0.0.0:8000"]
