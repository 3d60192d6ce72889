# syntax=docker/dockerfile:1

# The fabric image: one static binary on distroless, as a non-root user.
# Its entrypoint is `fabric`, so the command picks the subcommand:
#
#   docker build -t fabric .
#   docker run --rm -p 8080:8080 fabric                  # fabric dev: http://localhost:8080/
#   docker run --rm fabric gateway --nats nats://…:4222 --durable
#   docker run --rm fabric worker --nats nats://…:4222 --demo
#
# The image has no shell, curl or wget: healthchecks run
# `fabric health URL`. The demo page is embedded (web/dist), so no Node
# stage. docker-compose.yml builds it; deploy/compose's test reads this file.

# The Go of go.mod (a newer one works too).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Modules first, in their own layer and cache.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    go mod download
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,target=. \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/fabric ./cmd/fabric

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fabric /usr/local/bin/fabric
USER nonroot:nonroot
# The gateway's (and fabric dev's) default --listen.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fabric"]
CMD ["dev"]
