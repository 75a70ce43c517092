# fleetjobs server image: docker build -t fleetjobs . && docker run -p 1883:1883 -p 8080:8080 -v fleetjobs-data:/data fleetjobs
# See README.md (Docker) and docs/operations.md. NODE_IMAGE lets an air-gapped build use a local base image.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
# The image holds exactly what `npm pack` ships (package.json "files"), plus its production dependencies; pack
# runs the `prepare` script, which builds dist/.
RUN npm pack --pack-destination /tmp \
  && mkdir /app \
  && tar -xzf /tmp/fleetjobs-*.tgz -C /app --strip-components=1 \
  && cp package-lock.json /app/
WORKDIR /app
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    FLEETJOBS_DATA_DIR=/data \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    MQTT_HOST=0.0.0.0 \
    MQTT_PORT=1883 \
    AUTH_MODE=required
WORKDIR /app
COPY --from=build /app /app
# The embedded store, master key and first admin key live in /data, owned by the unprivileged node user.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 1883 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.HTTP_PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/fleetjobs.js"]
CMD ["serve"]
