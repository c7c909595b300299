package hf

// Size caps for the side files of a checkpoint directory, read whole into
// memory and decoded. Decoding JSON into generic values takes up to about
// 60 bytes of memory per input byte (a config.json holding one long array
// of zeros), so each cap is set a few times above the largest real file of
// its kind and no larger: a 510 MB config.json exhausted memory when the
// cap was 512 MB for every file.
const (
	// maxSmallJSON bounds config.json, generation_config.json,
	// tokenizer_config.json (Gemma 3's, with thousands of added tokens, is
	// 1.2 MB), special_tokens_map.json, added_tokens.json,
	// chat_template.json and chat_template.jinja.
	maxSmallJSON = 8 << 20
	// maxTokenizerFile bounds tokenizer.json, vocab.json, merges.txt and
	// tokenizer.model: real ones reach a few tens of MB (Gemma's
	// 262k-token tokenizer.json is 33 MB).
	maxTokenizerFile = 64 << 20
	// maxTokenizerPart bounds each of tokenizer.json's normalizer,
	// pre_tokenizer, post_processor and decoder objects (real ones are at
	// most a few KB; the vocabulary and merges are not part of them).
	maxTokenizerPart = 1 << 20
	// maxAuxFile bounds any other auxiliary file carried in Model.Files
	// (model cards, custom code); larger ones are left out.
	maxAuxFile = 64 << 20
)

// SideFileLimit returns the largest size in bytes ReadDir, ReadTokenizer
// and ReadConfigFile accept for the side file with base name name, and
// whether name is a side file they read (tokenizer files, config.json,
// generation_config.json). A larger side file is an error naming the
// file, its size and the limit; other auxiliary files get maxAuxFile.
func SideFileLimit(name string) (limit int64, known bool) {
	switch name {
	case "tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model":
		return maxTokenizerFile, true
	case ConfigName, "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
		"added_tokens.json", "chat_template.json", "chat_template.jinja":
		return maxSmallJSON, true
	}
	return maxAuxFile, false
}
