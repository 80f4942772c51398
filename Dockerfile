# Dockerfile - a dotproxy container image: built and unit-tested in a Debian 12 stage with
# the project's own make targets, installed with `make install`, run from debian:12-slim.
#
#   docker build -t dotproxy .
#   docker run -d --name dotproxy --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#       --restart unless-stopped -e DOTPROXY_MODE=tproxy -e RULES_SCOPE=host \
#       -e DOTPROXY_UPSTREAM="1.1.1.1@853#cloudflare-dns.com 9.9.9.9@853#dns.quad9.net" dotproxy
#
# The entrypoint (deploy/docker/entrypoint.sh) installs the rules in the host's network
# namespace (--network host), runs the daemon, and removes the rules when it stops; the
# daemon drops from root to the image's `dotproxy` user once its sockets are open.
# RULES_SCOPE=none leaves the rules to the host (dotproxy-rules up ... there).
# tests/e2e/test_packaging.sh checks the build steps and the files copied below without a
# docker engine.

FROM debian:12 AS build
RUN apt-get update \
	&& apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev \
		libnetfilter-queue-dev libmnl-dev check ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# the targets CI runs: build, then the unit suites (ASan+UBSan)
RUN make
RUN make unit
RUN make install DESTDIR=/out PREFIX=/usr

FROM debian:12-slim
# runtime libraries, and what dotproxy-rules calls (iptables, nft, ip)
RUN apt-get update \
	&& apt-get install -y --no-install-recommends libssl3 libnetfilter-queue1 libmnl0 \
		iptables nftables iproute2 ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
RUN useradd --system --no-create-home --shell /usr/sbin/nologin dotproxy
COPY --from=build /out/usr/sbin/dotproxy /out/usr/sbin/dotproxy-rules /usr/sbin/
COPY --from=build --chown=root:dotproxy /out/etc/dotproxy/dotproxy.conf /etc/dotproxy/dotproxy.conf
COPY --from=build /src/deploy/docker/entrypoint.sh /usr/local/sbin/dotproxy-entrypoint
ENTRYPOINT ["/usr/local/sbin/dotproxy-entrypoint"]
