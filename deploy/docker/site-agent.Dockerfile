# syntax=docker/dockerfile:1
#
# The fedsynth site agent image, for a hospital's host. Build it from the repository root (the build context):
#
#   docker build -f deploy/docker/site-agent.Dockerfile -t fedsynth-site-agent:0.1.0 .
#
# The entrypoint is the `fedsynth` command itself, so the image runs exactly what the README documents. The
# agent only dials out: this image exposes no port. Mount the site's CSV read-only and give it a volume:
#
#   docker run --rm -v fedsynth-site:/var/lib/fedsynth-site fedsynth-site-agent:0.1.0 \
#     site enroll --coordinator coord.example.org:7070 --name cleveland --token fst_... \
#     --ca-fingerprint 7A:34:... --data-dir /var/lib/fedsynth-site                       # once
#   docker run -d --restart unless-stopped -v fedsynth-site:/var/lib/fedsynth-site \
#     -v /secure/cleveland.csv:/data/site.csv:ro fedsynth-site-agent:0.1.0 \
#     site start --coordinator coord.example.org:7070 --name cleveland --data /data/site.csv \
#     --data-dir /var/lib/fedsynth-site --epsilon-cap 3 --delta-cap 1e-5
#
# The build stage is the same, line for line, as in coordinator.Dockerfile, so building both images shares it.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: install with the lockfile, compile the native SQLite binding, generate and compile, prune ------
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# node-gyp builds better-sqlite3 against this Node's own headers (no header download) when no prebuilt fits.
ENV npm_config_nodedir=/usr/local
# true: also install @tensorflow/tfjs-node (the optional native TensorFlow backend; its install downloads
# libtensorflow, a few hundred MB). Default false: the neural engine uses the bundled WebAssembly backend.
ARG FEDSYNTH_TFJS_NODE=false
COPY package.json package-lock.json ./
# Dependencies first (a cached layer until the lockfile changes). --ignore-scripts keeps npm from running the
# project's own `prepare` (the build) before the sources are here; the few install scripts that are needed
# run explicitly.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 protobufjs @bufbuild/buf \
 && if [ "$FEDSYNTH_TFJS_NODE" = "true" ]; then npm rebuild @tensorflow/tfjs-node; fi
COPY tsconfig.json buf.gen.yaml ./
COPY proto/ proto/
COPY scripts/finish-build.mjs scripts/
COPY shared/ shared/
COPY coordinator/ coordinator/
COPY site-agent/ site-agent/
COPY cli/ cli/
COPY evaluation/ evaluation/
# npm run build: buf generate (gen/), tsc (dist/), finish-build. Then drop the dev dependencies (and, unless
# asked for, tfjs-node and everything only it needs).
RUN npm run build \
 && if [ "$FEDSYNTH_TFJS_NODE" = "true" ]; then npm prune --omit=dev --no-audit --no-fund; \
    else npm prune --omit=dev --omit=optional --no-audit --no-fund; fi

# ---- runtime: Node, the compiled CLI and its production node_modules; nothing else -------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="fedsynth-site-agent" \
      org.opencontainers.image.description="fedsynth site agent: dials out to the consortium coordinator (never listens); computes differentially private statistics on the site's CSV" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# A fixed, unprivileged UID/GID (10001), the same as the coordinator image's. The site's CSV must be readable
# by it (or by its group).
RUN groupadd --system --gid 10001 fedsynth \
 && useradd --system --uid 10001 --gid fedsynth --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fedsynth \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/fedsynth-site
WORKDIR /opt/fedsynth
# Owned by root, read-only to the process: the code cannot be changed by what runs it.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
RUN ln -s /opt/fedsynth/dist/cli/main.js /usr/local/bin/fedsynth
USER 10001:10001
# The site's identity (DATA_DIR/identity: its TLS key and signing key, which never leave it), its own ledger
# (DATA_DIR/site.sqlite) and DATA_DIR/status.json. Back it up; losing it means enrolling again.
VOLUME ["/var/lib/fedsynth-site"]
# No EXPOSE: the agent never listens.
# Healthy while the agent runs and keeps DATA_DIR/status.json fresh (see `fedsynth health site --help`).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["fedsynth", "health", "site", "--data-dir", "/var/lib/fedsynth-site"]
ENTRYPOINT ["fedsynth"]
# The agent needs the site's own settings (coordinator, name, CSV, budget cap): no useful default.
CMD ["site", "--help"]
