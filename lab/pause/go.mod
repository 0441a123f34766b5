module dgxlab/pause

go 1.22
