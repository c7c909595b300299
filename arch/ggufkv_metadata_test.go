package arch

import "testing"

// Expected values are the assertions of llama.cpp's gguf-py
// tests/test_metadata.py (@34af94cd) for Metadata.get_model_id_components:
// (full name, organization, basename, finetune, version, size label).
func TestModelIDComponents(t *testing.T) {
	tests := []struct {
		id    string
		total int64
		want  [6]string
	}{
		{"Mistral/Mixtral-8x7B-Instruct-v0.1", 0, [6]string{"Mixtral-8x7B-Instruct-v0.1", "Mistral", "Mixtral", "Instruct", "v0.1", "8x7B"}},
		{"Mixtral-8x7B-Instruct-v0.1", 0, [6]string{"Mixtral-8x7B-Instruct-v0.1", "", "Mixtral", "Instruct", "v0.1", "8x7B"}},
		{"Mixtral-8x7B-Instruct", 0, [6]string{"Mixtral-8x7B-Instruct", "", "Mixtral", "Instruct", "", "8x7B"}},
		{"Mixtral-8x7B-v0.1", 0, [6]string{"Mixtral-8x7B-v0.1", "", "Mixtral", "", "v0.1", "8x7B"}},
		{"Mixtral-8x7B", 0, [6]string{"Mixtral-8x7B", "", "Mixtral", "", "", "8x7B"}},
		{"Mixtral-v0.1", 0, [6]string{"Mixtral-v0.1", "", "Mixtral", "", "v0.1", ""}},
		{"Mixtral", 0, [6]string{"Mixtral", "", "", "", "", ""}},
		{"NousResearch/Meta-Llama-3-8B", 0, [6]string{"Meta-Llama-3-8B", "NousResearch", "Meta-Llama-3", "", "", "8B"}},
		{"Qwen1.5-MoE-A2.7B-Chat", 0, [6]string{"Qwen1.5-MoE-A2.7B-Chat", "", "Qwen1.5-MoE", "Chat", "", "A2.7B"}},
		{"Qwen2-57B-A14B-Instruct", 0, [6]string{"Qwen2-57B-A14B-Instruct", "", "Qwen2", "Instruct", "", "57B-A14B"}},
		{"microsoft/Phi-3-mini-4k-instruct", 4000000000, [6]string{"Phi-3-mini-4k-instruct", "microsoft", "Phi-3", "4k-instruct", "", "mini"}},
		{"delphi-suite/stories-llama2-50k", 50000, [6]string{"stories-llama2-50k", "delphi-suite", "stories-llama2", "", "", "50K"}},
		{"DeepSeek-Coder-V2-Lite-Instruct", 0, [6]string{"DeepSeek-Coder-V2-Lite-Instruct", "", "DeepSeek-Coder-V2-Lite", "Instruct", "", ""}},
		{"crestf411/daybreak-kunoichi-2dpo-7b", 0, [6]string{"daybreak-kunoichi-2dpo-7b", "crestf411", "daybreak-kunoichi", "2dpo", "", "7B"}},
		{"Qwen2-0.5B-Instruct", 0, [6]string{"Qwen2-0.5B-Instruct", "", "Qwen2", "Instruct", "", "0.5B"}},
		{"smallcloudai/Refact-1_6B-fim", 0, [6]string{"Refact-1_6B-fim", "smallcloudai", "Refact", "fim", "", "1.6B"}},
		{"UCLA-AGI/Gemma-2-9B-It-SPPO-Iter3", 0, [6]string{"Gemma-2-9B-It-SPPO-Iter3", "UCLA-AGI", "Gemma-2", "It-SPPO", "Iter3", "9B"}},
		{"NousResearch/Hermes-2-Theta-Llama-3-8B", 0, [6]string{"Hermes-2-Theta-Llama-3-8B", "NousResearch", "Hermes-2-Theta-Llama-3", "", "", "8B"}},
		{"SeaLLMs/SeaLLMs-v3-7B-Chat", 0, [6]string{"SeaLLMs-v3-7B-Chat", "SeaLLMs", "SeaLLMs-v3", "Chat", "", "7B"}},
		{"internlm/internlm2_5-7b-chat-1m", 7000000000, [6]string{"internlm2_5-7b-chat-1m", "internlm", "internlm2_5", "chat-1m", "", "7B"}},
		{"pszemraj/jamba-900M-v0.13-KIx2", 0, [6]string{"jamba-900M-v0.13-KIx2", "pszemraj", "jamba", "KIx2", "v0.13", "900M"}},
		{"state-spaces/mamba-2.8b-hf", 0, [6]string{"mamba-2.8b-hf", "state-spaces", "mamba", "hf", "", "2.8B"}},
		{"abacaj/llama-161M-100B", 161000000, [6]string{"llama-161M-100B", "abacaj", "llama", "100b", "", "161M"}},
		{"SparseLLM/relu-100B", 1340000000, [6]string{"relu-100B", "SparseLLM", "relu", "100b", "", ""}},
		{"bigscience/bloom-7b1-petals", 0, [6]string{"bloom-7b1-petals", "bigscience", "bloom", "petals", "", "7.1B"}},
		{"MaziyarPanahi/GreenNode-mini-7B-multilingual-v1olet-Mistral-7B-Instruct-v0.1", 0, [6]string{"GreenNode-mini-7B-multilingual-v1olet-Mistral-7B-Instruct-v0.1", "MaziyarPanahi", "GreenNode-mini", "multilingual-v1olet-Mistral-Instruct", "v0.1", "7B"}},
		{"mistralai/Mistral-Nemo-Instruct-2407", 0, [6]string{"Mistral-Nemo-Instruct-2407", "mistralai", "Mistral-Nemo", "Instruct", "2407", ""}},
		{"deepseek-ai/DeepSeek-V2-Chat-0628", 0, [6]string{"DeepSeek-V2-Chat-0628", "deepseek-ai", "DeepSeek-V2", "Chat", "0628", ""}},
		{"OpenGVLab/Mini-InternVL-Chat-2B-V1-5", 0, [6]string{"Mini-InternVL-Chat-2B-V1-5", "OpenGVLab", "Mini-InternVL", "Chat", "V1-5", "2B"}},
		{"jondurbin/bagel-dpo-2.8b-v0.2", 0, [6]string{"bagel-dpo-2.8b-v0.2", "jondurbin", "bagel-dpo", "", "v0.2", "2.8B"}},
		{"voxmenthe/SFR-Iterative-DPO-LLaMA-3-8B-R-unquantized", 0, [6]string{"SFR-Iterative-DPO-LLaMA-3-8B-R-unquantized", "voxmenthe", "SFR-Iterative-DPO-LLaMA-3", "R-unquantized", "", "8B"}},
		{"microsoft/Florence-2-base", 0, [6]string{"Florence-2-base", "microsoft", "", "", "", ""}},
		{"mistralai/-Mistral--Nemo-Base-2407-", 0, [6]string{"-Mistral--Nemo-Base-2407-", "mistralai", "Mistral-Nemo-Base", "", "2407", ""}},
		{"Llama-3-Instruct-abliteration-LoRA-8B", 0, [6]string{"Llama-3-Instruct-abliteration-LoRA-8B", "", "Llama-3", "Instruct-abliteration-LoRA", "", "8B"}},
		{"Llama-3-Instruct-abliteration-LoRA-8B", -1234, [6]string{"Llama-3-Instruct-abliteration-LoRA-8B", "", "Llama-3", "Instruct-abliteration", "", "8B"}}}
	for _, tt := range tests {
		full, org, base, ft, ver, size := modelIDComponents(tt.id, tt.total)
		if got := [6]string{full, org, base, ft, ver, size}; got != tt.want {
			t.Errorf("%q (%d params):\n got %q\nwant %q", tt.id, tt.total, got, tt.want)
		}
	}
}

func TestIDToTitle(t *testing.T) {
	for in, want := range map[string]string{ // gguf-py tests/test_metadata.py
		"Mixtral-8x7B-Instruct-v0.1":  "Mixtral 8x7B Instruct v0.1",
		"Meta-Llama-3-8B":             "Meta Llama 3 8B",
		"hermes-2-pro-llama-3-8b-DPO": "Hermes 2 Pro Llama 3 8b DPO",
		"kjv-llama":                   "Kjv Llama",
		"qwen2.5-0.5b":                "Qwen2.5 0.5b",
	} {
		if got := idToTitle(in); got != want {
			t.Errorf("idToTitle(%q) = %q, want %q", in, got, want)
		}
	}
}

// Size labels as gguf.utility.size_label prints them (Python f"{x:.{fix}f}").
func TestSizeLabel(t *testing.T) {
	for n, want := range map[int64]string{
		6_848_768:      "6.8M", // kjv-llama (kjv-llama.bf16.gguf says 6.8M)
		260_000:        "260K",
		494_032_768:    "494M", // Qwen2.5-0.5B
		8_030_261_248:  "8.0B", // Llama-3.1-8B
		1_500:          "1.5K",
		400:            "0.40K",
		70_553_706_496: "71B",
	} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}
