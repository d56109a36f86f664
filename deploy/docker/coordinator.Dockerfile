# syntax=docker/dockerfile:1
#
# The fedsynth coordinator image. Build it from the repository root (the build context):
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t fedsynth-coordinator:0.1.0 .
#
# The entrypoint is the `fedsynth` command itself, so the image runs exactly what the README documents:
#
#   docker run --rm -v fedsynth-coordinator:/var/lib/fedsynth fedsynth-coordinator:0.1.0 \
#     coordinator init --data-dir /var/lib/fedsynth --hostname coord.example.org       # once
#   docker run -d -p 7070:7070 -v fedsynth-coordinator:/var/lib/fedsynth fedsynth-coordinator:0.1.0
#                                     # default command: coordinator start --data-dir /var/lib/fedsynth --listen 0.0.0.0:7070
#
# The build stage is the same, line for line, as in site-agent.Dockerfile, so building both images shares it.

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
LABEL org.opencontainers.image.title="fedsynth-coordinator" \
      org.opencontainers.image.description="fedsynth coordinator: the consortium's gRPC server (mutual TLS); studies, rounds, pooled models" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# A fixed, unprivileged UID/GID (10001): the Helm chart's runAsUser/fsGroup and any host volume use the same.
RUN groupadd --system --gid 10001 fedsynth \
 && useradd --system --uid 10001 --gid fedsynth --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fedsynth \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/fedsynth
WORKDIR /opt/fedsynth
# Owned by root, read-only to the process: the code cannot be changed by what runs it.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
RUN ln -s /opt/fedsynth/dist/cli/main.js /usr/local/bin/fedsynth
USER 10001:10001
# The coordinator's whole state: DATA_DIR/pki (the consortium CA and the coordinator's key), DATA_DIR/operator
# (the first operator's credentials, from init) and DATA_DIR/coordinator.sqlite. Back it up.
VOLUME ["/var/lib/fedsynth"]
# The one gRPC port sites and operators dial (mutual TLS).
EXPOSE 7070
# grpc.health.v1 over TLS, trusting the consortium CA (no client certificate needed). 127.0.0.1 is always in
# the coordinator's certificate. If you change --listen's port, override this check to match.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["fedsynth", "health", "coordinator", "--address", "127.0.0.1:7070", "--ca", "/var/lib/fedsynth/pki/ca.pem"]
ENTRYPOINT ["fedsynth"]
CMD ["coordinator", "start", "--data-dir", "/var/lib/fedsynth", "--listen", "0.0.0.0:7070"]
