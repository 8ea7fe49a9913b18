# syntax=docker/dockerfile:1
# ctpipe: one image per role, both from this file.
#   runtime   (default): every subcommand as user `ctpipe`; the processor by default:
#             docker run ctpipe process --kafka-brokers ... --clickhouse-url http://...
#   collector: the same, with node given CAP_NET_ADMIN as a file capability so the collector runs
#             as `ctpipe` too. The container must be allowed that one capability and share the
#             host's network namespace (the conntrack table it watches):
#             docker run --network host --cap-drop ALL --cap-add NET_ADMIN ctpipe-collector
#             (CAP_NET_ADMIN: the conntrack multicast groups, SO_RCVBUFFORCE, NFLOG; nothing else.)
ARG NODE_IMAGE=node:20.19.5-bookworm

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# g++, make and python3 (in the full image) build the netlink addon; `npm ci` builds dist/ too
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY bin/ bin/
COPY cli/ cli/
COPY collector/ collector/
COPY common/ common/
COPY contract/ contract/
COPY processor/ processor/
COPY dashboards/ dashboards/
COPY lab/ lab/
COPY bench/ bench/
RUN npm ci && npm prune --omit=dev

FROM ${NODE_IMAGE}-slim AS runtime
WORKDIR /opt/ctpipe
COPY --from=build /src/package.json ./
COPY --from=build /src/bin/ bin/
COPY --from=build /src/dist/ dist/
COPY --from=build /src/build/Release/ctpipe_netlink.node build/Release/
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dashboards/grafana/ dashboards/grafana/
RUN useradd --system --uid 10001 --home-dir /var/lib/ctpipe --create-home ctpipe
USER ctpipe
EXPOSE 9464
ENTRYPOINT ["node", "--max-semi-space-size=64", "/opt/ctpipe/bin/ctpipe.js"]
CMD ["process"]

FROM runtime AS collector
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
 && cp /usr/local/bin/node /usr/local/bin/node-collector \
 && setcap cap_net_admin+ep /usr/local/bin/node-collector \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER ctpipe
ENTRYPOINT ["/usr/local/bin/node-collector", "--max-semi-space-size=64", "/opt/ctpipe/bin/ctpipe.js"]
CMD ["collect"]
