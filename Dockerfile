# openkvs container image: one static binary on an empty base (FROM scratch),
# run as an unprivileged user (UID 65532), data in the /data volume.
#
#   docker build -t openkvs .
#   docker run -d --name openkvs -p 4567:4567 -v openkvs-data:/data \
#     -v /etc/openkvs/credentials.json:/etc/openkvs/credentials.json:ro \
#     -e OPENKVS_CREDENTIALS=/etc/openkvs/credentials.json openkvs
#
# A container listens on 0.0.0.0, where openkvs refuses to serve without
# authentication: give it --credentials (OPENKVS_CREDENTIALS) or, on a
# network only you reach, --insecure (OPENKVS_INSECURE=true).
#
# Only the builder stage needs an image from a registry (GO_IMAGE, any image
# with Go 1.26 and a shell); the final stage needs none. Its cache mounts need
# BuildKit (Docker 23 or later) or buildah; podman builds it too
# (--format docker keeps the HEALTHCHECK).

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY . .
# The SQLite driver is pure Go: without cgo the binary needs no libc. The
# cache mounts keep modules and compiled packages from one build to the next.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /rootfs/openkvs ./cmd/openkvs
# scratch has no user database and no directories. /tmp is where SQLite
# spills large sorts; /data is made by its own COPY below, which gives it
# to the user.
RUN mkdir -p /rootfs/etc /rootfs/tmp /data && \
    chmod 1777 /rootfs/tmp && \
    echo 'openkvs:x:65532:65532:openkvs:/data:/sbin/nologin' > /rootfs/etc/passwd && \
    echo 'openkvs:x:65532:' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
ENV OPENKVS_ADDR=0.0.0.0:4567 OPENKVS_DATA=/data
VOLUME /data
EXPOSE 4567
# openkvs healthcheck reads OPENKVS_ADDR (and OPENKVS_TLS_CERT) as serve does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/openkvs", "healthcheck"]
ENTRYPOINT ["/openkvs"]
CMD ["serve"]
