// A socketio-pubsub client: Socket.IO with path /ws, namespace /chat; users are named
// by username and a conversation is between two of them.
//
// Requests are answered through acks. The client opens its conversation with the
// peer (`wait-for-user`), sends one chat and prints what is pushed until stopped. Its
// own chat comes back in the ack, not as a push.
//
//   CHAT_TOKEN=$BOB CHAT_PEER=ann node socketio-pubsub.mjs
//
// Environment: CHAT_URL (default http://127.0.0.1:8080), CHAT_TOKEN, CHAT_PEER (the
// other user's username), CHAT_TEXT.
import { io } from "socket.io-client";

const { CHAT_URL = "http://127.0.0.1:8080", CHAT_TOKEN, CHAT_PEER, CHAT_TEXT = "hello from socketio-pubsub" } =
  process.env;

const chat = io(`${CHAT_URL}/chat`, { path: "/ws", auth: { token: CHAT_TOKEN } });
chat.on("auth-failed", ({ message }) => {
  console.error(`refused: ${message}`);
  process.exit(1);
});
const show = (c) => `#${c.id} from ${c.sender}: ${JSON.stringify(c.message)}${c.media.length ? ` media ${c.media}` : ""}`;
chat.on("chat", ({ chat: c }) => console.log(`<- chat ${show(c)}`));
for (const event of ["read-chat", "unread-chats-count", "user-online", "user-offline", "user-join", "user-leave", "error"]) {
  chat.on(event, (payload) => console.log(`<- ${event} ${JSON.stringify(payload)}`));
}

chat.once("connect", async () => {
  await chat.emitWithAck("wait-for-user", { user: CHAT_PEER });
  const { chats } = await chat.emitWithAck("fetch-conversation-with-user", { user: CHAT_PEER });
  console.log(`ready: conversation with ${CHAT_PEER} (${chats.length} earlier chats)`);
  const sent = await chat.emitWithAck("send-message", { message: CHAT_TEXT, user: CHAT_PEER });
  if (sent.error) console.log(`<- ${sent.error}: ${sent.message}`);
  else console.log(`sent ${show(sent.chat)}`);
});
