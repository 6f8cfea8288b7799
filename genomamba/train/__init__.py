"""Training: masked-language-model pretraining (``pretrain``) and fine-tuning."""
