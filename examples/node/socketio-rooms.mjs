// A socketio-rooms client: Socket.IO on the default path /socket.io/, namespace "/".
//
// Every event is answered by an event of the same name (and the ack, when one is
// given). The client finds the chat it shares with the peer (or creates one), sends
// one message and prints every `new-message` until stopped — its own included, since
// the answer to `new-message` is the stored message.
//
//   CHAT_TOKEN=$BOB CHAT_USER_ID=2 CHAT_PEER=1 node socketio-rooms.mjs
//
// Environment: CHAT_URL (default http://127.0.0.1:8080), CHAT_TOKEN, CHAT_USER_ID
// (the token's user), CHAT_PEER (the other user's id), CHAT_TEXT.
import { io } from "socket.io-client";

const {
  CHAT_URL = "http://127.0.0.1:8080",
  CHAT_TOKEN,
  CHAT_USER_ID,
  CHAT_PEER,
  CHAT_TEXT = "hello from socketio-rooms",
} = process.env;
const me = { id: CHAT_USER_ID };

const socket = io(CHAT_URL, { auth: { token: CHAT_TOKEN } });
socket.on("connect_error", (err) => {
  console.error(`refused: ${err.message}`);
  process.exit(1);
});
socket.on("error", (e) => console.log(`<- error ${JSON.stringify(e)}`));
// Ids are decimal strings; files sent through other dialects arrive as URLs.
socket.on("new-message", (m) =>
  console.log(`<- new-message #${m.id} from ${m.user_id}: ${JSON.stringify(m.msg)} (${m.type})`));

socket.once("connect", async () => {
  // One-to-one chats of other dialects are listed too, with two users.
  const { chats } = await socket.emitWithAck("list-chats", { user: me });
  let chat = chats.find((c) => c.users.length === 2 && c.users.includes(CHAT_PEER));
  if (!chat) {
    ({ chat } = await socket.emitWithAck("create-chat", { chat: { name: "" }, users: [CHAT_PEER] }));
  }
  console.log(`ready: chat ${chat.id}`);
  socket.emit("new-message", { chat: { id: chat.id }, user: me, message: { value: CHAT_TEXT, type: "text" } });
});
