package arch

import (
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// specialAdds on the post-processors transformers writes.
func TestSpecialAdds(t *testing.T) {
	llama3 := `{"post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing",
		"single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
		"pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
		         {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}]}]}}`
	bert := `{"post_processor": {"type": "TemplateProcessing",
		"single": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "[SEP]"}}],
		"pair": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "[SEP]"}}, {"Sequence": {"id": "B"}}, {"SpecialToken": {"id": "[SEP]"}}]}}`
	tests := []struct {
		name   string
		tj, tc string
		spm    *graph.Tokenizer
		want   []addFlag
	}{
		{"llama3", llama3, `{"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}`, nil,
			[]addFlag{{"bos", true}, {"sep", false}}},
		// [SEP] between A and B is not counted: the single template
		// already ends in a special token (SpecialVocab's "not special_last").
		{"bert", bert, `{"cls_token": "[CLS]", "sep_token": "[SEP]"}`, nil,
			[]addFlag{{"bos", true}, {"eos", true}, {"sep", false}}},
		{"roberta", `{"post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}}`, `{}`, nil,
			[]addFlag{{"bos", true}, {"eos", true}, {"sep", true}}},
		{"config overrides", llama3, `{"bos_token": "<|begin_of_text|>", "add_bos_token": false, "add_eos_token": true}`, nil,
			[]addFlag{{"bos", false}, {"sep", false}, {"eos", true}}},
		{"spm without tokenizer.json", "", `{"bos_token": "<s>", "eos_token": "</s>"}`, &graph.Tokenizer{Model: "llama", AddBOS: true},
			[]addFlag{{"bos", true}, {"sep", false}}},
		{"spm add_eos", "", `{"bos_token": "<s>", "eos_token": "</s>", "add_eos_token": true}`, &graph.Tokenizer{Model: "llama", AddBOS: true, AddEOS: true},
			[]addFlag{{"bos", true}, {"eos", true}, {"sep", false}}},
		{"no files", "", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &graph.Model{Files: map[string][]byte{}, Tokenizer: tt.spm}
			if tt.tj != "" {
				m.Files["tokenizer.json"] = []byte(tt.tj)
			}
			if tt.tc != "" {
				m.Files["tokenizer_config.json"] = []byte(tt.tc)
			}
			got, err := specialAdds(m)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
