# Build the gateway in a Rust image, run it in a slim Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
# npm fetches the socket.io-client bundle the console embeds (see crates/gateway/build.rs).
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release -p chat-gateway && cp target/release/chat-gateway /chat-gateway

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/chat-gateway --create-home chat
COPY --from=build /chat-gateway /usr/local/bin/chat-gateway
USER chat
WORKDIR /var/lib/chat-gateway
ENV CHAT_GATEWAY_LISTEN=0.0.0.0:8080 \
    CHAT_GATEWAY_DATA_DIR=/var/lib/chat-gateway/data
EXPOSE 8080
ENTRYPOINT ["chat-gateway"]
CMD ["serve"]
