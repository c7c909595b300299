package arch

import (
	"encoding/json"
	"math"

	"github.com/quantbridge/quantbridge/graph"
)

// specialIDOrder returns the special-token types ("bos", "eos", ...) in
// the order gguf-py's SpecialVocab inserts them into special_token_ids,
// which is the order add_to_gguf writes the tokenizer.ggml.*_token_id keys:
// first the types whose tokenizer_config.json entry (after SpecialVocab's
// cls->bos, sep->eos and TemplateProcessing substitutions) names an added
// token of tokenizer.json, in special_token_types order; then the types
// found as <type>_token_id in config.json, in the same order. Types found
// neither way are not listed (the caller appends them in its fixed order).
// A Qwen2 checkpoint shows why it matters: bos_token is null in
// tokenizer_config.json but config.json has bos_token_id, so the converter
// writes eos, pad, bos.
func specialIDOrder(m *graph.Model) []string {
	types := []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"}
	var order []string
	seen := map[string]bool{}
	add := func(typ string) {
		if !seen[typ] {
			seen[typ] = true
			order = append(order, typ)
		}
	}

	var tj struct {
		AddedTokens []struct {
			ID      *int   `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
		PostProcessor map[string]any `json:"post_processor"`
	}
	haveTJ := false
	if b := m.Files["tokenizer.json"]; b != nil && json.Unmarshal(b, &tj) == nil {
		haveTJ = true
	}
	var tc map[string]any
	if b := m.Files["tokenizer_config.json"]; b != nil {
		if json.Unmarshal(b, &tc) != nil {
			tc = nil
		}
	}
	if haveTJ && len(tc) > 0 {
		// The *_token strings as SpecialVocab leaves them before its
		// per-type loop (only plain strings take part in the substitutions).
		str := func(key string) string { s, _ := tc[key].(string); return s }
		entry := map[string]string{}
		for _, typ := range types {
			switch v := tc[typ+"_token"].(type) {
			case string:
				entry[typ] = v
			case map[string]any:
				if s, ok := v["content"].(string); ok {
					entry[typ] = s
				}
			}
		}
		bos, cls, eos, sep := str("bos_token"), str("cls_token"), str("eos_token"), str("sep_token")
		if bos == "" && cls != "" {
			bos, entry["bos"] = cls, cls
		}
		if eos == "" && sep != "" {
			eos, entry["eos"] = sep, sep
		}
		if pp := tj.PostProcessor; pp != nil {
			procs := []map[string]any{pp}
			if list, ok := pp["processors"].([]any); ok {
				procs = procs[:0]
				for _, p := range list {
					if pm, ok := p.(map[string]any); ok {
						procs = append(procs, pm)
					}
				}
			}
			for _, p := range procs {
				if p["type"] != "TemplateProcessing" {
					continue
				}
				b0, c0, e0, s0 := bos, cls, eos, sep
				templateFlags(p, &bos, &eos, &cls, &sep, true, func(string, bool) {})
				for typ, pair := range map[string][2]string{"bos": {b0, bos}, "cls": {c0, cls}, "eos": {e0, eos}, "sep": {s0, sep}} {
					if pair[0] != pair[1] {
						entry[typ] = pair[1]
					}
				}
			}
		}
		for _, typ := range types {
			s, ok := entry[typ]
			if !ok {
				continue
			}
			for _, at := range tj.AddedTokens {
				if at.Content == s {
					if at.ID != nil && *at.ID >= 0 {
						add(typ)
					}
					break
				}
			}
		}
	}
	if cfg := m.Config; cfg != nil {
		text, _ := cfg["text_config"].(map[string]any)
		for _, typ := range types {
			v, ok := cfg[typ+"_token_id"]
			if (!ok || v == nil) && text != nil {
				v = text[typ+"_token_id"]
			}
			if f, ok := v.(float64); ok && f >= 0 && f == math.Trunc(f) {
				add(typ)
			}
		}
	}
	return order
}
