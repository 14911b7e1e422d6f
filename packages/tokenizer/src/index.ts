export { type ChatMessage, ChatTemplate, readChatTemplateText, specialTokenVariables } from "./chat-template.js";
export {
  DEFAULT_TOKENIZER_WARNING,
  defaultTokenizerDir,
  GEMMA3_TOKENIZER_WRITTEN_WARNING,
  gemma3TokenizerWarning,
  GemmaTokenizer,
  loadDefaultTokenizer,
  loadTokenizer,
  type TokenizerIdentity,
} from "./tokenizer.js";
export { FastEncoder } from "./fast-encode.js";
